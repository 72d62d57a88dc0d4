"""The learning campaign: Symphony's headless trainer beside Stable-Baselines3 SAC (bench/learning/README.md)."""
