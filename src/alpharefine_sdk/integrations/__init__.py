"""Integrations with tools that run trackers: the VOT toolkit (:mod:`.vot`, through TraX) and a Ray
cluster for the evaluation (:mod:`alpharefine_sdk.eval.distributed`). Each loads its host library
only when used; importing this package imports nothing."""
