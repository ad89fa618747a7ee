"""The rule catalog: one small function per finding id."""
