"""The CPU tiny recipe in one corner: synthetic clips, the word tokenizer, random-weight models."""
