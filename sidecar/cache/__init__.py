"""The rendition cache on disk: atomic publishing, single-flight locks, the cascade of renditions from renditions,
purge and gc."""
