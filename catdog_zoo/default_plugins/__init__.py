"""The core's own plugins, loaded through the same hooks as any installed plugin (as ``llm`` does)."""
