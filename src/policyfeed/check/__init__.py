"""Preflight: the feeds and pages the build wrote, each variant of an issue as a message, the
templates' accessibility and the settings mail needs. Imports the stages it reads (site, digest,
audience, content, store…); never delivery; nothing imports it but publish and cli."""
