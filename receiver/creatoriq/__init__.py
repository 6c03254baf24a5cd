"""CreatorIQ: what a creator's profile needs before 1099Policy's CreatorIQ sync can take it."""
