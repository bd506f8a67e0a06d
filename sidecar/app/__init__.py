"""The request path: a miss from its URL to the published file (renditions, info, fallback), admission, the admin API,
health, the resolver and warming."""
