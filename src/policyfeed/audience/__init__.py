"""The audience: chapters, subscribers, the signed tokens in their links and return paths, what a
member does with them (unsubscribe), and what their mail systems send back (bounces, complaints).
Imports model, config, templating, store and content; never site, digest, delivery, publish, web."""
