"""Generated from protos/ by scripts/generate.py. Do not edit."""
