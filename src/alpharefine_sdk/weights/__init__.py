"""Weights: the original checkpoint container, our safetensors format, and the Hub."""
