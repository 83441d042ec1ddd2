"""`files.extract_metadata`: facts about files uploaded into a batch."""
