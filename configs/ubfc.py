r"""SimPer on UBFC-rPPG (DATASET_2; docs/heart-rate.md), evaluated by the rPPG HR protocol.

Run (with UBFC-rPPG in the manual_dir, see docs/heart-rate.md):
  python -m simper_jax.main --config=configs/ubfc.py --config.data.manual_dir=/data/UBFC
On any machine, with synthetic subjectN/vid.avi + ground_truth.txt files:
  python -m simper_jax.main --config=configs/ubfc.py:synthetic --workdir=workdir/ubfc_synthetic

Variants: see configs/common_rppg.py. Face crop by Haar cascade; subject-wise 80/20 split.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from configs import common_rppg  # noqa: E402  pylint: disable=g-import-not-at-top


def get_config(arg: str = ""):
  return common_rppg.get_config("ubfc_rppg", arg, face_crop=True, synthetic_videos=30,
                                synthetic_size=(72, 96))
