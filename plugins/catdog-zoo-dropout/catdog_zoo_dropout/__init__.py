"""The reference CNN with dropout; one entry point (module) per architecture."""
