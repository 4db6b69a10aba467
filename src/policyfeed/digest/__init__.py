"""The digest: which posts an issue takes and its life, each chapter's variant rendered (HTML,
text part, subject) and the MIME messages made from it. Imports model, config, schedule,
templating, store, content and audience (recipients' links); never site, delivery, publish, web."""
