#!/bin/sh
# floors.sh: the C files read as floors, each using only those below it (make lint): from the
# built objects' symbols (nm), names every set of files that use each other, directly or around
# a loop, with the symbols that tie them.
# Usage: floors.sh OBJECT...   (e.g. build/obj/*.o build/obj/cli/*.o)
set -u
[ $# -gt 0 ] || { echo "usage: floors.sh OBJECT..." >&2; exit 2; }
for o in "$@"; do
  [ -f "$o" ] || { echo "floors.sh: $o does not exist (build first)" >&2; exit 2; }
done
defined=$(nm -A --defined-only -g "$@") && undefined=$(nm -A -u "$@") ||
  { echo "floors.sh: nm cannot read the objects" >&2; exit 2; }
{ printf '%s\n' "$defined" | awk '$(NF-1) ~ /^[TDBRC]$/ { sub(/:[^:]*$/, "", $1); print "D", $1, $NF }'
  printf '%s\n' "$undefined" | awk 'NF >= 2 { sub(/:.*$/, "", $1); print "U", $1, $NF }'
} | perl -e '
use strict; use warnings;
my (%def, %uses, %syms);
my @rows = map { chomp; [split / /] } <STDIN>;
$def{$_->[2]} = $_->[1] for grep { $_->[0] eq "D" } @rows;
for (grep { $_->[0] eq "U" } @rows) {
  my ($u, $f, $s) = @$_;
  my $d = $def{$s} or next;
  next if $d eq $f;
  $uses{$f}{$d} = 1;
  push @{$syms{"$f $d"}}, $s;
}
# Tarjan: the strongly connected components with more than one file are loops.
my ($index, @stack, %on, %idx, %low, @loops) = (0);
my $visit;
$visit = sub {
  my ($v) = @_;
  $idx{$v} = $low{$v} = $index++;
  push @stack, $v; $on{$v} = 1;
  for my $w (sort keys %{$uses{$v} || {}}) {
    if (!exists $idx{$w}) { $visit->($w); $low{$v} = $low{$w} if $low{$w} < $low{$v}; }
    elsif ($on{$w} && $idx{$w} < $low{$v}) { $low{$v} = $idx{$w}; }
  }
  if ($low{$v} == $idx{$v}) {
    my @c;
    while (1) { my $w = pop @stack; $on{$w} = 0; push @c, $w; last if $w eq $v; }
    push @loops, [sort @c] if @c > 1;
  }
};
$visit->($_) for sort keys %uses;
for my $c (@loops) {
  my %in = map { $_ => 1 } @$c;
  print "floors: these files use each other: ", join(", ", @$c), "\n";
  for my $a (@$c) {
    for my $b (sort keys %{$uses{$a}}) {
      next unless $in{$b};
      my %seen; my @s = grep { !$seen{$_}++ } @{$syms{"$a $b"}};
      print "  $a -> $b: @s\n";
    }
  }
}
exit(@loops ? 1 : 0);
'
