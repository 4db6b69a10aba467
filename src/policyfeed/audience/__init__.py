"""The audience: chapters, subscribers, the signed tokens in their links and what a member does
with them (unsubscribe). Imports model, config, templating, store and content (slugs, clean
text); never site, digest, delivery, publish, web or cli."""
