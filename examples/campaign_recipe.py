"""Campaigns and recipes: many experiments drawn from distributions, each replayable alone.

The template (``ptyfast recipe --example``) is a campaign; here it is shrunk to three
experiments of 30 positions and simulated into a directory, one file each.
"""

from pathlib import Path

import numpy as np

import ptyfast
from ptyfast.model import recipes

doc = recipes.loads(recipes.example())  # the commented template, parsed
doc["campaign"]["n_experiments"] = 3
doc["scan"]["n"] = 30
doc["object"]["shape"] = [160, 160]
c = ptyfast.Campaign.from_dict(doc)
print(c)

files = c.simulate_to("campaign_out", overwrite=True)
for f in files:
    ds = ptyfast.open(f)
    block = ds.provenance["campaign"]
    draws = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in block["draws"].items()}
    print(Path(f).name, f"#{block['index']}", draws)

# Any one experiment replays alone, from its file.
one = ptyfast.open(files[1])
assert np.array_equal(ptyfast.replay(one).diffraction, one.diffraction)
# The whole campaign comes back from any of its files.
back = ptyfast.Campaign.from_dict(recipes.loads(recipes.from_provenance(one, campaign=True)))
assert back.to_dict() == c.to_dict()
print("campaign recovered from", Path(files[1]).name)
