"""Named experiment presets and multi-seed comparisons."""
