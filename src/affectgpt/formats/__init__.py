"""The original release's file conventions: checkpoint file names and suffixes, prediction keys, label files."""
