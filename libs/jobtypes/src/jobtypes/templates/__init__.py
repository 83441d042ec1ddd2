"""The template library and `templates.consolidate`: duplicates found by normalised content
or similarity, merged, replaced or archived; same-name conflicts resolved by rule, skipped or
parked for a person's decision."""
