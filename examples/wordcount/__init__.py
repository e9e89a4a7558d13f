"""A word count on the stream-processing runtime: ``python -m examples.wordcount``."""
