"""Reading, converting, checking and writing annotated NER data."""
