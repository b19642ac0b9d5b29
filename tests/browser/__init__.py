"""Tests that drive headless Chromium against the running web app."""
