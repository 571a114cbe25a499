"""Network blocks of the refiner: backbones, correlation, fusion neck, heads and the assembled nets."""
