"""``asyncstream demo``: snapshot-diff handlers over a scratch tree and its replica."""
