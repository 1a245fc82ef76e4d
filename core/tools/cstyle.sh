#!/bin/sh
# cstyle.sh: the C house style that a compiler does not check, for core/ (make lint).
# Usage: cstyle.sh [FILE.c|FILE.h ...]   (default: every .c and .h under core/)
# Checks, each reported as FILE:LINE: what:
#   - the two-line header comment: line 1 "/* NAME: what it is", line 2 " * ... */";
#   - a non-static function or object uses its file's module prefix: NAME_ for NAME.c and
#     NAME_PART.c (addr_, http_, store_, policy_, ...), luaopen_mcpl_M and M_ for bind_M.c,
#     cli_ under cli/; the exceptions are the engine's own interface, mcpl_ (mcplink.h and
#     engine.h: engine.c, engine_base.c, errors.c, luastate.c), and main() in cli/main.c
#     and the tools;
#   - no prototypes and no extern declarations in .c files (they belong in a header).
set -u
cd "$(dirname "$0")/../.." || exit 2
[ $# -gt 0 ] || set -- $(find core -name '*.[ch]' | sort)
exec perl -e '
use strict; use warnings;
my $bad = 0;
sub report { my ($f, $l, $m) = @_; print "$f:$l: $m\n"; $bad++; }

# The prefixes a file may give its non-static functions and objects.
sub prefixes {
  my ($path) = @_;
  my ($dir, $base) = $path =~ m{^(.*/)?([^/]+)\.c$} or return ();
  $dir //= "";
  return ("main") if $dir =~ m{/tools/$};
  return ("cli_", $base eq "main" ? "main" : ()) if $dir =~ m{/cli/$};
  return ("mcpl_") if $base =~ /^(engine|engine_base|errors|luastate)$/;
  return ("luaopen_mcpl_$1", "$1_") if $base =~ /^bind_([a-z]+)$/;
  my ($module) = $base =~ /^([a-z]+)/;
  return ("${module}_");
}

for my $f (@ARGV) {
  open(my $fh, "<", $f) or do { report($f, 0, "cannot read: $!"); next };
  my @lines = <$fh>;
  close $fh;
  my ($name) = $f =~ m{([^/]+)$};
  # 1. the header
  my ($l1, $l2) = map { defined $_ ? $_ : "" } @lines[0, 1];
  if ($l1 !~ m{^/\* \Q$name\E: \S} || $l1 =~ m{\*/}) {
    report($f, 1, "the file opens with a two-line header comment: \"/* $name: what it is\"");
  } elsif ($l2 !~ m{^ \* .*\*/\s*$}) {
    report($f, 2, "the header comment ends on its second line (\" * ... */\")");
  }
  next unless $f =~ /\.c$/;
  # 2. and 3. top-level declarations, with comments, strings and preprocessor lines blanked
  # (newlines kept, so line numbers stay right)
  my $src = join("", @lines);
  $src =~ s{(/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27)}{
    my $t = $1;
    if ($t =~ /^["\x27]/) { substr($t, 0, 1) x 2 }
    else { my $n = ($t =~ tr/\n//); $n ? "\n" x $n : " " }
  }gse;
  $src =~ s{^[ \t]*#(?:[^\n]*\\\n)*[^\n]*}{ my $t = $&; "\n" x ($t =~ tr/\n//) }gme;
  my @ok = prefixes($f);
  my ($depth, $paren, $text, $start, $line) = (0, 0, "", 0, 1);
  my $check_name = sub {
    my ($n, $ln, $what) = @_;
    return if grep { $n eq $_ || ($_ =~ /_$/ && index($n, $_) == 0) } @ok;
    report($f, $ln, "non-static $what $n does not use the file\x27s prefix (" . join(", ", @ok) . ")");
  };
  for my $ch (split //, $src) {
    if ($ch eq "\n") { $line++; }
    if ($depth > 0) {
      $depth++ if $ch eq "{";
      $depth-- if $ch eq "}";
      $text .= " {} " if $depth == 0 && $text ne "";
      next;
    }
    $start = $line if $text =~ /^\s*$/ && $ch =~ /\S/;
    if ($ch eq "(") { $paren++; }
    elsif ($ch eq ")") { $paren--; }
    elsif ($ch eq "{" && $paren == 0) {
      my $head = $text; $head =~ s/\s+/ /g; $head =~ s/^ //;
      if ($head !~ /=/ && $head =~ /(\w+)\s*\((?:[^()]|\([^()]*\))*\)\s*$/) {
        my $fn = $1;
        $check_name->($fn, $start, "function") unless $head =~ /^static\b/;
        $text = "";            # a function body ends the statement
      }
      $depth = 1;
      next;
    } elsif ($ch eq ";" && $paren == 0) {
      my $t = $text; $t =~ s/\s+/ /g; $t =~ s/^ //; $t =~ s/ $//;
      $text = "";
      next if $t eq "" || $t =~ /^(typedef|static|_Static_assert)\b/;
      if ($t =~ /^extern\b/) { report($f, $start, "extern declaration in a .c file (it belongs in a header)"); next; }
      if ($t =~ /^(?:const )?(?:struct|enum|union) \w+(?: \{\})?$/) { next; }
      if ($t =~ /(\w+)\s*(?:\[[^\]]*\])*\s*=/) { $check_name->($1, $start, "object"); next; }
      if ($t =~ /(\w+)\s*\((?:[^()]|\([^()]*\))*\)(?:\s*__attribute__\s*\(\(.*\)\))?$/) {
        report($f, $start, "prototype of $1 in a .c file (it belongs in a header)");
        next;
      }
      if ($t =~ /(\w+)\s*(?:\[[^\]]*\])*$/) { $check_name->($1, $start, "object"); }
      next;
    }
    $text .= $ch;
  }
}
exit($bad ? 1 : 0);
' -- "$@"
