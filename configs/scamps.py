r"""SimPer on SCAMPS (synthetic avatars; docs/heart-rate.md), evaluated by the rPPG HR protocol.

Run (with SCAMPS in the manual_dir, see docs/heart-rate.md):
  python -m simper_jax.main --config=configs/scamps.py --config.data.manual_dir=/data/SCAMPS
On any machine, with synthetic files in SCAMPS's real .mat format:
  python -m simper_jax.main --config=configs/scamps.py:synthetic --workdir=workdir/scamps_synthetic

Variants: see configs/common_rppg.py. SCAMPS's `Xsub` is already a face crop, so no face
detection; splits are the official train/validation/test.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common_rppg  # noqa: E402  pylint: disable=g-import-not-at-top


def get_config(arg: str = ""):
  return common_rppg.get_config("scamps", arg, face_crop=False, synthetic_videos=40,
                                synthetic_size=(64, 64))
