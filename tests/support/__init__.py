"""Helpers shared by test folders: tiny Contract-2 SavedModels, free ports, servers started and stopped."""
