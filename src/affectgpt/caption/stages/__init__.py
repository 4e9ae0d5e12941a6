"""The caption stages by name (STAGES), one per base.STAGE_ORDER entry; each entry is a class built without
arguments (its config comes with each call, in StageContext.config). Besides base.Stage's attributes each
declares `writes` (the fields it may add: the contract between stages, engine and output writer), `defaults`
(its config section with every key; caption/config.py fills them in and refuses other keys) and `check(section)`
(InputError for a bad section, before any clip runs; nothing is built or loaded).

Entries are "module:class" strings resolved on use, so naming a stage imports only its module (and a stage
imports its backend only when its config chooses it).
"""

from affectgpt.registry import Registry

STAGES = Registry("caption stage", {
    "probe": "affectgpt.caption.stages.probe:Probe",
    "subtitle": "affectgpt.caption.stages.subtitle:Subtitle",
    "acoustic": "affectgpt.caption.stages.acoustic:Acoustic",
    "visual": "affectgpt.caption.stages.visual:Visual",
    "merge": "affectgpt.caption.stages.merge:Merge",
    "lowlevel": "affectgpt.caption.stages.lowlevel:LowLevel",
    "highlevel": "affectgpt.caption.stages.highlevel:HighLevel",
    "labels": "affectgpt.caption.stages.labels:Labels",
})
