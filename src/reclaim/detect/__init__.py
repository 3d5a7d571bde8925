"""Detections (rules as data), sign-in analytics and the verdict per user (S1-S10, I2, I3)."""
