#!/usr/bin/perl
# tests/cli/interactive_tty.t: a server's questions put to the person at a terminal (tmux), against
# the SDK v2 and v1 fixtures: the REPL asks form fields one by one and shows URLs, Ctrl-C stops a
# question, progress lines appear; `mcplink call` prompts in a terminal and answers with a
# continuation when it is not in one.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

my $bin = $ENV{MCPLINK_BIN} or die "MCPLINK_BIN is not set\n";
-x $bin or die "$bin is not executable\n";
my $top = abs_path(dirname(__FILE__) . '/../..');
delete $ENV{TMUX};
if (system('sh', '-c', 'command -v tmux >/dev/null') != 0) {
  print "Bail out! tmux is not installed (make deps installs it)\n";
  exit 255;
}
if (!-d "$top/tests/fixtures/node_modules/\@modelcontextprotocol/sdk") {
  print "Bail out! fixtures not installed (make fixtures)\n";
  exit 255;
}

my $tmp = tempdir('mcplink-itty-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $sock = "mcplink-itty-$$";
my $conf = "$tmp/tmux.conf";
open my $cf, '>', $conf or die "$conf: $!\n";
print $cf "set -g remain-on-exit on\nset -g history-limit 5000\n";
close $cf;
my $certs = $ENV{FIXTURE_CERTS} || (($ENV{MCPLINK_BUILD} || "$top/build") . '/certs');
$ENV{FIXTURE_CERTS} = $certs;
$ENV{FIXTURE_PARENT_PID} = $$;
my @fixture_pids;
my $n = 0;
my $T;

sub ok {
  my ($cond, $name) = @_;
  $n++;
  print(($cond ? "ok" : "not ok") . " $n - $name\n");
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
END {
  local $?;
  for my $f (glob "$tmp/pid.*") {
    open my $fh, '<', $f or next;
    my $p = <$fh>;
    kill 'KILL', $p if defined $p && $p =~ /^\d+$/;
  }
  system("tmux -L $sock kill-server 2>/dev/null") if $sock;
  system('sh', "$top/tests/fixtures/stop.sh", @fixture_pids) if @fixture_pids;
}

sub start_fixture {
  my $line = `sh '$top/tests/fixtures/start.sh' @_`;
  if ($? != 0 || $line !~ /"url":"([^"]+)".*"pid":(\d+)/) {
    print "Bail out! could not start the fixture @_\n";
    exit 255;
  }
  push @fixture_pids, $2;
  return $1;
}
my $v2 = start_fixture('server-v2', '--api-key', 'k-tty');
my $v1 = start_fixture('server-v1', '--api-key', 'k-tty');
my @M = ($bin, '--db', "$tmp/t.db", '--key-file', "$tmp/t.key", '--ca-file', "$certs/ca.pem");

# the world: a tenant user with an assistant that has both servers' tools
open my $sf, '>', "$tmp/setup.lua" or die;
print $sf <<"LUA";
mcplink.must("settings.set", { allow_private_urls = true })
local t = mcplink.setup { tenant = "acme", users = { ann = "admin" } }
local bot = t.ann:must("assistant.create", { name = "Desk" })
for _, sv in ipairs({ { "v2", "$v2" }, { "v1", "$v1" } }) do
  local s = t.ann:must("server.create", { name = sv[1] })
  t.ann:must("server.update", { id = s.id, url = sv[2], auth_type = "api_key", api_key = "k-tty" })
  t.ann:must("tool.enable", { server = s.id })
  t.ann:must("assistant.attach", { assistant = bot.id, server = s.id })
end
print("ready " .. bot.id)
LUA
close $sf;
my $out = `@M run '$tmp/setup.lua' 2>&1`;
my ($desk) = $out =~ /^ready (\S+)$/m;
if (!$desk) { print "Bail out! set-up failed: $out\n"; exit 255; }

sub screen { tmux_out('capture-pane', '-p', '-J', '-S', '-5000', '-t', $T) }
sub type_text { tmux('send-keys', '-t', $T, '-l', $_[0]) }
sub key { tmux('send-keys', '-t', $T, @_) }
sub enter { type_text($_[0]); key('Enter') }
sub wait_for {
  my ($re, $secs) = @_;
  my $end = time + ($secs || 15);
  while (time < $end) {
    my $s = screen();
    return $s if $s =~ $re;
    sleep 0.05;
  }
  return undef;
}
# count($re): how many times the pane's text (scroll-back included) matches
sub count { my $n = () = screen() =~ /$_[0]/g; return $n }
# wait_more($re, $n): until the pane's text matches more than $n times: a
# prompt seen before in the scroll-back does not answer for a new one
sub wait_more {
  my ($re, $n, $secs) = @_;
  my $end = time + ($secs || 15);
  while (time < $end) {
    return 1 if count($re) > $n;
    sleep 0.05;
  }
  return 0;
}
# the pane's process writes its pid and exit status into files (as in repl.t)
my $WRAP = <<'PL';
my ($pidf, $stf, @cmd) = @ARGV;
my $p = fork;
die "fork: $!" unless defined $p;
if (!$p) { exec @cmd or exit 127 }
$SIG{INT} = 'IGNORE';
open my $f, '>', "$pidf.tmp" or die; print $f $p; close $f; rename "$pidf.tmp", $pidf;
waitpid $p, 0;
my $st = ($? & 127) ? 'signal ' . ($? & 127) : ($? >> 8);
open $f, '>', "$stf.tmp" or die; print $f $st; close $f; rename "$stf.tmp", $stf;
PL
my $sess = 0;
sub start_pane {
  $sess++;
  $T = "p$sess";
  tmux('new-session', '-d', '-x', '200', '-y', '50', '-s', $T, $^X, '-e', $WRAP, "$tmp/pid.$sess",
       "$tmp/status.$sess", 'env', "HOME=$tmp", 'MCPLINK_HISTORY=', 'TERM=screen', @_)
    or die "tmux new-session failed\n";
}
sub pane_status {
  my $end = time + 15;
  while (time < $end) {
    if (open my $f, '<', "$tmp/status.$sess") { my $s = <$f>; return $s; }
    sleep 0.05;
  }
  return undef;
}

# ---- the REPL ------------------------------------------------------------------------
my $P = 'mcplink(acme/ann)> ';
start_pane(@M, '--tenant', 'acme', '--user', 'ann', 'repl');
if (!ok(wait_for(qr/^\Q$P\E\s*$/m), 'the REPL starts as the tenant user')) { diag(screen()); exit 1; }

enter('r = tool.call{assistant = "' . $desk . '", tool = "v2__ask_form", arguments = {message = "Who is there?"}}');
ok(wait_for(qr/^server 'v2' \(127\.0\.0\.1:\d+\) asks: Who is there\?$/m), 'the question names its server')
  or diag(screen());
ok(wait_for(qr/^Name \(text, required\): $/m), 'the required field is asked first') or diag(screen());
key('Enter');
ok(wait_for(qr/^  name is required$/m), 'a required field cannot be left out') or diag(screen());
enter('Ann');
ok(wait_for(qr/^Age \(a whole number from 0 to 150\) \[30\]: $/m), 'a field shows its range and default')
  or diag(screen());
enter('200');
ok(wait_for(qr/^  must be <= 150$/m), 'an answer outside the schema is refused as it is typed') or diag(screen());
key('Enter');
ok(wait_for(qr/^Favourite colour \(one of red, green, blue\) \[green\]: $/m), 'an enum shows its choices')
  or diag(screen());
enter('blue');
ok(wait_for(qr/^E-mail \(a email\): $/m), 'a format is named') or diag(screen());
enter('not-an-address');
ok(wait_for(qr/^  must be a valid email$/m), 'a format is checked') or diag(screen());
enter('ann@example.com');
ok(wait_for(qr/^Subscribe \(yes or no\) \[no\]: $/m), 'a boolean is yes or no') or diag(screen());
enter('yes');
ok(wait_for(qr/^Send this answer\? \[Y\]es, \[n\]o \(decline\), \[c\]ancel: $/m), 'the answer is sent on request')
  or diag(screen());
key('Enter');
wait_for(qr/^\Q$P\E\s*$/m);
enter('r.structuredContent.content.name .. "/" .. r.structuredContent.content.age .. "/" .. r.structuredContent.content.color .. "/" .. tostring(r.structuredContent.content.subscribe)');
ok(wait_for(qr/^Ann\/30\/blue\/true$/m), 'the server got the answers, the default included') or diag(screen());

enter('r = tool.call{assistant = "' . $desk . '", tool = "v1__ask_form"}');
ok(wait_for(qr/^server 'v1' \(127\.0\.0\.1:\d+\) asks: Who are you\?$/m), 'a handshake-era server asks too')
  or diag(screen());
wait_for(qr/^Name \(text, required\): $/m);
enter('Bo');
for (1 .. 4) { sleep 0.2; key('Enter'); }
ok(wait_for(qr/^Send this answer\?.*: $/m), 'the fields left out take their defaults') or diag(screen());
enter('n');
wait_for(qr/^\Q$P\E\s*$/m);
enter('r.structuredContent.action');
ok(wait_for(qr/^decline$/m), 'n declines') or diag(screen());

enter('r = tool.call{assistant = "' . $desk . '", tool = "v2__ask_url"}');
ok(wait_for(qr/^    https:\/\/auth\.example\.com\/connect\?flow=42$/m), 'a URL question shows the URL')
  or diag(screen());
ok(wait_for(qr/^  its host: auth\.example\.com$/m), 'and its host') or diag(screen());
ok(screen() =~ /mcplink does not open it/, 'the engine does not open it');
enter('y');
wait_for(qr/^\Q$P\E\s*$/m);
enter('r.structuredContent.action');
ok(wait_for(qr/^accept$/m), 'consent to the URL is accept') or diag(screen());

my $asked = count(qr/^Name \(text, required\): $/m);
enter('r = tool.call{assistant = "' . $desk . '", tool = "v2__ask_form"}');
ok(wait_more(qr/^Name \(text, required\): $/m, $asked), 'the form asks again') or diag(screen());
key('C-c');
ok(wait_for(qr/^error: interrupted$/m), 'Ctrl-C at a question stops the call') or diag(screen());
enter('"still" .. "here"');
ok(wait_for(qr/^stillhere$/m), 'the session goes on') or diag(screen());

enter('tool.call{assistant = "' . $desk . '", tool = "v1__progress", arguments = {steps = 2}}.content[1].text');
ok(wait_for(qr/^progress 1\/2: step 1 of 2\nprogress 2\/2: step 2 of 2\ndone after 2 steps$/m),
   'progress lines appear as the call runs') or diag(screen());
key('C-d');
my $st = pane_status();
ok(defined $st && $st eq '0', 'the REPL exits cleanly') or diag("status: " . ($st // 'running'));

# ---- mcplink call in a terminal --------------------------------------------------------
start_pane('sh', '-c', join(' ', map { "'$_'" } @M, '--tenant', 'acme', '--user', 'ann', '--compact',
           'call', $desk, 'v1__ask_form') . " > $tmp/call.json");
ok(wait_for(qr/^server 'v1' \(127\.0\.0\.1:\d+\) asks: Who are you\?$/m), 'mcplink call asks in a terminal')
  or diag(screen());
wait_for(qr/^Name \(text, required\): $/m);
enter('Cy');
for (1 .. 4) { sleep 0.2; key('Enter'); }
wait_for(qr/^Send this answer\?/m);
key('Enter');
$st = pane_status();
ok(defined $st && $st eq '0', 'and exits 0') or diag(screen());
my $json = do { local $/; open my $f, '<', "$tmp/call.json"; <$f> // '' };
ok($json =~ /\\"name\\":\\"Cy\\"/ && $json !~ /Name \(text/, 'the result alone goes to stdout') or diag($json);

start_pane(@M, '--tenant', 'acme', '--user', 'ann', 'call', $desk, 'v2__ask_url');
ok(wait_for(qr/^    https:\/\/auth\.example\.com\/connect\?flow=42$/m), 'mcplink call prints a URL request')
  or diag(screen());
enter('c');
ok(wait_for(qr/"action": "cancel"/), 'c cancels') or diag(screen());

# ---- not in a terminal: a continuation ---------------------------------------------------
$out = `@M --tenant acme --user ann --compact call $desk v2__ask_form < /dev/null 2>&1`;
ok($out =~ /"resultType":"input_required"/ && $out =~ /"continuation":"([^"]+)"/, 'without a terminal, call answers with a continuation')
  or diag($out);
my ($cont) = $out =~ /"continuation":"([^"]+)"/;
$out = `@M --tenant acme --user ann --compact tool continue '$cont' '{"profile":{"action":"accept","content":{"name":"Di"}}}' 2>&1`;
ok($out =~ /\\"name\\":\\"Di\\"/, 'mcplink tool continue carries it on') or diag($out);

# ---- a `run` script answers with its hook ------------------------------------------------
open my $rf, '>', "$tmp/answer.lua" or die;
print $rf <<"LUA";
local ann = mcplink.as({ tenant = "acme", user = "ann" })
local seen = {}
mcplink.on_input(function(req) seen[#seen + 1] = req.message; return { action = "accept", content = { name = "Run" } } end)
local r = ann:must("tool.call", { assistant = "$desk", tool = "v1__ask_form" })
print("v1 " .. r.structuredContent.content.name .. " age " .. r.structuredContent.content.age .. " asked " .. #seen)
r = ann:must("tool.call", { assistant = "$desk", tool = "v2__ask_form" })
print("v2 " .. r.structuredContent.content.name .. " asked " .. #seen)
LUA
close $rf;
$out = `@M run '$tmp/answer.lua' 2>&1`;
ok($out =~ /^v1 Run age 30 asked 1\nv2 Run asked 2$/m, 'a run script answers both eras with mcplink.on_input (defaults filled)')
  or diag($out);

print "1..$n\n";
