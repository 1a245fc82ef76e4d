#!/usr/bin/perl
# tests/cli/repl.t: drives `mcplink repl` through a real terminal (tmux) the
# way a person would: typing, Tab, arrow keys, Ctrl-C, Ctrl-D, a SIGHUP.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

my $bin = $ENV{MCPLINK_BIN} or die "MCPLINK_BIN is not set\n";
-x $bin or die "$bin is not executable\n";
delete $ENV{TMUX};
if (system('sh', '-c', 'command -v tmux >/dev/null') != 0) {
  print "Bail out! tmux is not installed (make deps installs it)\n";
  exit 255;
}

my $tmp = tempdir('mcplink-repl-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sock = "mcplink-repl-$$";
my $conf = "$tmp/tmux.conf";
open my $cf, '>', $conf or die "$conf: $!\n";
# keep a finished pane so its exit status can be read
print $cf "set -g remain-on-exit on\nset -g history-limit 5000\n";
close $cf;
my $hist = "$tmp/history";
# the REPL's policies: a reason that names the version in force, so a reload shows
sub write_policy {
  my ($v) = @_;
  mkdir "$tmp/policies";
  open my $pf, '>', "$tmp/policies/default.lua.tmp" or die "policy: $!\n";
  print $pf "-- repl.t policy, version $v\nreturn { url = function(req)\n" .
            "  if req.host == 'marker.example' then return { allow = false, reason = 'version $v' } end\n" .
            "  return { allow = true }\nend }\n";
  close $pf;
  rename "$tmp/policies/default.lua.tmp", "$tmp/policies/default.lua" or die "policy: $!\n";
}
write_policy(1);
my $n = 0;
my $failed = 0;
my $T;  # the tmux session of the REPL being driven

sub ok {
  my ($cond, $name) = @_;
  $n++;
  print(($cond ? "ok" : "not ok") . " $n - $name\n");
  $failed++ unless $cond;
  return $cond;
}
sub diag { my $m = join('', @_); $m =~ s/^/# /mg; print STDERR "$m\n"; }

sub tmux { system('tmux', '-L', $sock, '-f', $conf, @_) == 0 }
sub tmux_out {
  open my $fh, '-|', 'tmux', '-L', $sock, '-f', $conf, @_ or return '';
  local $/;
  my $s = <$fh>;
  close $fh;
  return defined $s ? $s : '';
}
# On the way out, even after a failure: stop every REPL this test started
# (their pids are in pid.N), then the private tmux server.
END {
  local $?;  # system() below must not replace the exit status
  for my $f (glob "$tmp/pid.*") {
    open my $fh, '<', $f or next;
    my $p = <$fh>;
    kill 'KILL', $p if defined $p && $p =~ /^\d+$/;
  }
  system("tmux -L $sock kill-server 2>/dev/null") if $sock;
}

sub screen { tmux_out('capture-pane', '-p', '-J', '-S', '-5000', '-t', $T) }
sub type_text { tmux('send-keys', '-t', $T, '-l', $_[0]) }
sub key { tmux('send-keys', '-t', $T, @_) }
sub enter { type_text($_[0]); key('Enter') }

# Polls the screen until it matches; bounded, never a blind long sleep.
sub wait_for {
  my ($re, $secs) = @_;
  my $end = time + ($secs || 10);
  my $s;
  while (time < $end) {
    $s = screen();
    return $s if $s =~ $re;
    sleep 0.05;
  }
  return undef;
}
# The screen's last non-empty line.
sub last_line {
  my @l = grep { /\S/ } split /\n/, screen();
  return @l ? $l[-1] : '';
}
sub wait_prompt {
  my ($prompt, $secs) = @_;
  my $end = time + ($secs || 10);
  while (time < $end) {
    my $l = last_line();
    $l =~ s/\s+$//;
    my $p = $prompt;
    $p =~ s/\s+$//;
    return 1 if $l eq $p;
    sleep 0.05;
  }
  return 0;
}
# tmux itself sometimes loses a pane's exit status, so a tiny Perl parent
# runs the REPL in the pane and records its pid and exit status in files.
my $WRAP = <<'PL';
my ($pidf, $stf, @cmd) = @ARGV;
my $p = fork;
die "fork: $!" unless defined $p;
if (!$p) { exec @cmd or exit 127 }
$SIG{INT} = 'IGNORE';                 # the terminal's Ctrl-C is for the REPL
$SIG{HUP} = sub { kill 'HUP', $p };   # a hangup reaches the job, as a shell does
open my $f, '>', "$pidf.tmp" or die; print $f $p; close $f; rename "$pidf.tmp", $pidf;
waitpid $p, 0;
my $st = ($? & 127) ? 'signal ' . ($? & 127) : ($? >> 8);
open $f, '>', "$stf.tmp" or die; print $f $st; close $f; rename "$stf.tmp", $stf;
PL

my $sess = 0;
sub pane_status {
  my $end = time + 10;
  while (time < $end) {
    if (open my $f, '<', "$tmp/status.$sess") { my $s = <$f>; return $s; }
    sleep 0.05;
  }
  return undef;
}
sub repl_pid {
  my $end = time + 10;
  while (time < $end) {
    if (open my $f, '<', "$tmp/pid.$sess") { my $s = <$f>; return $s; }
    sleep 0.05;
  }
  return undef;
}
sub start_session {
  $sess++;
  $T = "r$sess";
  my @cmd = ($^X, '-e', $WRAP, "$tmp/pid.$sess", "$tmp/status.$sess",
             'env', "HOME=$tmp", "MCPLINK_HISTORY=$hist", 'TERM=screen',
             $bin, '--db', "$tmp/x.db", '--policies', "$tmp/policies", 'repl');
  tmux('new-session', '-d', '-x', '160', '-y', '50', '-s', $T, @cmd) or die "tmux new-session failed\n";
}

my $SYS = 'mcplink(system)> ';
my $CONT = '   ...> ';

# ---- session one -------------------------------------------------------------
start_session();
if (!ok(wait_prompt($SYS), 'the prompt shows the system actor')) {
  diag(screen());
  print "Bail out! the REPL did not start\n";
  exit 255;
}

enter('6*7+1000');
ok(wait_for(qr/^\Q${SYS}\E6\*7\+1000\n1042\n/m), 'an expression prints its value') or diag(screen());

enter('engine.info()');
my $s = wait_for(qr/^  "version": "[0-9.]+"\n\}/m);
ok($s && $s =~ /^\Q${SYS}\Eengine\.info\(\)\n\{\n  "lua": /m &&
   $s =~ /^  "protocol_versions": \[\n    "2026-07-28",\n/m,
   'an op shorthand result is shown as indented JSON') or diag(screen());

enter('engine.no_such_op()');
ok(wait_for(qr/^error: not_found: unknown op 'engine\.no_such_op'/m), 'an op error is shown with its code')
  or diag(screen());
enter('"still" .. "here"');
ok(wait_for(qr/^stillhere$/m), 'the session goes on after an error') or diag(screen());

enter('function twice(x)');
ok(wait_prompt($CONT), 'an unfinished function continues on a continuation prompt') or diag(screen());
enter('return x * 2');
ok(wait_prompt($CONT), 'still continuing inside the function') or diag(screen());
enter('end');
ok(wait_prompt($SYS), 'end closes the chunk') or diag(screen());
enter('twice(21.25)');
ok(wait_for(qr/^42\.5$/m), 'the multi-line function was defined and runs') or diag(screen());

type_text('engine.inf');
wait_for(qr/\Qengine.inf\E\s*$/);
key('Tab');
ok(wait_for(qr/^\Q${SYS}\Eengine\.info\s*$/m), 'Tab completes engine.inf to engine.info') or diag(screen());
enter('().version');
ok(wait_for(qr/^\Q${SYS}\Eengine\.info\(\)\.version\n\d+\.\d+\.\d+$/m), 'the completed op runs')
  or diag(screen());

type_text('9999+');
wait_for(qr/\Q9999+\E\s*$/);
key('C-c');
ok(wait_prompt($SYS), 'Ctrl-C on a half-typed line gives a fresh prompt') or diag(screen());
enter('1+2000');
$s = wait_for(qr/^2001$/m);
ok($s && $s !~ /^12000$/m, 'Ctrl-C discarded the half-typed line') or diag(screen());

enter('while true do end');
wait_for(qr/\Qwhile true do end\E\n/);
sleep 0.3;
ok(last_line() =~ /^\Q${SYS}\Ewhile true do end\s*$/, 'the infinite loop is running (no new prompt)')
  or diag(screen());
key('C-c');
ok(wait_for(qr/^error: interrupted$/m), 'Ctrl-C interrupts the running loop') or diag(screen());
ok(wait_prompt($SYS), 'the prompt comes back after the interrupt') or diag(screen());
enter('"alive" .. 1');
ok(wait_for(qr/^alive1$/m), 'the REPL answers after the interrupt') or diag(screen());

enter('while true do pcall(function() while true do end end) end');
wait_for(qr/\Qend) end\E\n/);
sleep 0.3;
key('C-c');
ok(wait_for(qr/^error: interrupted\n(?s:.*)^error: interrupted$/m), 'a pcall inside the loop cannot swallow Ctrl-C')
  or diag(screen());
enter('"alive" .. 2');
ok(wait_for(qr/^alive2$/m), 'the REPL answers after the second interrupt') or diag(screen());

my $CHECK = 'url.check{url = "https://marker.example/", resolve = false}.reason';
enter($CHECK);
ok(wait_for(qr/^policy: version 1$/m), 'the policy in force at start decides') or diag(screen());
write_policy(2);
my $pid = repl_pid();
ok(defined $pid && kill('HUP', $pid), 'SIGHUP sent to the REPL');
ok(wait_for(qr/^policies reloaded$/m), 'SIGHUP reloads the policies') or diag(screen());
wait_prompt($SYS);
enter($CHECK);
ok(wait_for(qr/^policy: version 2$/m), 'the reloaded policy decides now') or diag(screen());
enter('"after" .. "hup"');
ok(wait_for(qr/^afterhup$/m), 'the REPL survives SIGHUP') or diag(screen());

enter('.as acme alice');
ok(wait_prompt('mcplink(acme/alice)> '), '.as changes the prompt to the tenant user') or diag(screen());
enter('mcplink.actor.tenant .. "/" .. mcplink.actor.user');
ok(wait_for(qr/^acme\/alice$/m), 'the op API now acts as that user') or diag(screen());
enter('.system');
ok(wait_prompt($SYS), '.system switches back') or diag(screen());

enter('"history" .. "marker"');
wait_for(qr/^historymarker$/m);
enter(' "sec" .. "ret"');
ok(wait_for(qr/^secret$/m), 'a line starting with a space runs') or diag(screen());
wait_prompt($SYS);
key('C-d');
my $st = pane_status();
ok(defined $st && $st eq '0', 'Ctrl-D exits with status 0') or diag("status: " . (defined $st ? $st : 'still running'));

ok(-f $hist && ((stat $hist)[2] & 0777) == 0600, 'the history file exists, mode 0600');

# ---- session two: history persisted -------------------------------------------
start_session();
wait_prompt($SYS);
key('Up');
ok(wait_for(qr/^\Q${SYS}\E"history" \.\. "marker"\s*$/m),
   'Up recalls the previous session\'s last line (the space-led one was not saved)') or diag(screen());
key('Enter');
ok(wait_for(qr/^historymarker$/m), 'the recalled line runs') or diag(screen());
enter('.quit');
$st = pane_status();
ok(defined $st && $st eq '0', '.quit exits with status 0') or diag("status: " . (defined $st ? $st : 'still running'));

# ---- session three: the terminal goes away while a loop runs ------------------------
start_session();
wait_prompt($SYS);
enter('while true do end');
wait_for(qr/\Qwhile true do end\E\n/);
sleep 0.2;
tmux('kill-pane', '-t', $T);
$st = pane_status();
ok(defined $st && $st eq '129', 'a terminal hangup stops the running loop and ends the REPL (status 129)')
  or diag("status: " . (defined $st ? $st : 'still running'));

# ---- not a terminal: lines in, results out ------------------------------------------
open my $in, '>', "$tmp/script.lua" or die;
print $in "x = 20\nfunction add(a)\n  return a + x\nend\nadd(22)\nengine.nope()\n\"end\" .. \"ok\"\n";
close $in;
my $out = `$bin --db $tmp/x.db repl < $tmp/script.lua 2>$tmp/err`;
my $rc = $? >> 8;
my $err = do { local $/; open my $e, '<', "$tmp/err" or die; <$e> };
is_piped($out, $err, $rc);
sub is_piped {
  my ($o, $e, $r) = @_;
  ok($o eq "42\nendok\n", 'piped input: results only, no prompts') or diag("stdout: [$o]");
  ok($e =~ /^error: not_found: unknown op 'engine\.nope'/m, 'piped input: errors on stderr') or diag("stderr: [$e]");
  ok($r == 1, 'piped input: exit status 1 after an error') or diag("exit: $r");
}

print "1..$n\n";
exit($failed ? 1 : 0);
