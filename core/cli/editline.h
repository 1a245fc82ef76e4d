/* editline.h: libedit through a table of pointers filled by dlopen when the
 * interactive REPL starts; included instead of <editline/readline.h>. */
#ifndef MCPL_CLI_EDITLINE_H
#define MCPL_CLI_EDITLINE_H

#include <stddef.h>
#include <stdio.h>
#include <editline/readline.h>

/* Every libedit function and variable the REPL uses (a variable's entry
 * points at libedit's own copy). One used but not listed here is an
 * undefined reference when mcplink is linked (it does not link libedit). */
#define CLI_EDITLINE_SYMBOLS(X) \
  X(add_history) X(history_list) X(read_history) X(readline) X(rl_completion_matches) \
  X(rl_deprep_terminal) X(rl_forced_update_display) X(rl_initialize) X(rl_prep_terminal) \
  X(stifle_history) X(using_history) X(write_history) X(history_length) \
  X(rl_attempted_completion_function) X(rl_attempted_completion_over) \
  X(rl_basic_word_break_characters) X(rl_catch_signals) X(rl_completer_word_break_characters) \
  X(rl_completion_append_character) X(rl_getc_function) X(rl_line_buffer) X(rl_readline_name)

typedef struct {
#define CLI_EDITLINE_FIELD(f) __typeof__(f) *p_##f;
  CLI_EDITLINE_SYMBOLS(CLI_EDITLINE_FIELD)
#undef CLI_EDITLINE_FIELD
} cli_editline_api;

/* Loads libedit once. cli_editline_ready: 0, or -1 with why in err
 * ("libedit.so.2 could not be loaded ..."); the interactive REPL checks it
 * before it edits a line. cli_editline() aborts when the library is not there. */
int cli_editline_ready(char *err, size_t en);
const cli_editline_api *cli_editline(void);

#define add_history (*cli_editline()->p_add_history)
#define history_list (*cli_editline()->p_history_list)
#define read_history (*cli_editline()->p_read_history)
#define readline (*cli_editline()->p_readline)
#define rl_completion_matches (*cli_editline()->p_rl_completion_matches)
#define rl_deprep_terminal (*cli_editline()->p_rl_deprep_terminal)
#define rl_forced_update_display (*cli_editline()->p_rl_forced_update_display)
#define rl_initialize (*cli_editline()->p_rl_initialize)
#define rl_prep_terminal (*cli_editline()->p_rl_prep_terminal)
#define stifle_history (*cli_editline()->p_stifle_history)
#define using_history (*cli_editline()->p_using_history)
#define write_history (*cli_editline()->p_write_history)
#define history_length (*cli_editline()->p_history_length)
#define rl_attempted_completion_function (*cli_editline()->p_rl_attempted_completion_function)
#define rl_attempted_completion_over (*cli_editline()->p_rl_attempted_completion_over)
#define rl_basic_word_break_characters (*cli_editline()->p_rl_basic_word_break_characters)
#define rl_catch_signals (*cli_editline()->p_rl_catch_signals)
#define rl_completer_word_break_characters (*cli_editline()->p_rl_completer_word_break_characters)
#define rl_completion_append_character (*cli_editline()->p_rl_completion_append_character)
#define rl_getc_function (*cli_editline()->p_rl_getc_function)
#define rl_line_buffer (*cli_editline()->p_rl_line_buffer)
#define rl_readline_name (*cli_editline()->p_rl_readline_name)

#endif
