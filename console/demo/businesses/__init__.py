"""The demo agency's five businesses, each in its own module: script, customers, the last few
days' leads and the canned replies its secretaries send."""

from __future__ import annotations

from console.demo.businesses.build import BUILD
from console.demo.businesses.dental import DENTAL, DENTAL_DRAFT
from console.demo.businesses.design import DESIGN
from console.demo.businesses.law import LAW
from console.demo.businesses.plumbing import PLUMBING
from console.demo.story import Demo
from console.leads.scripts import ScriptDraft

DEMOS: dict[str, Demo] = {
    "cohen-plumbing": PLUMBING,
    "levi-dental": DENTAL,
    "avraham-law": LAW,
    "noy-design": DESIGN,
    "mizrahi-build": BUILD,
}

# Newer script versions that an owner saved and did not publish yet.
DRAFTS: dict[str, ScriptDraft] = {"levi-dental": DENTAL_DRAFT}
