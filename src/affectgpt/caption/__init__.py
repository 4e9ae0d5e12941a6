"""MER-Caption construction: your own clips -> clues -> descriptions -> filters -> labels, in the released layout."""
