"""Train the stage-2 ControlLDM, or export a trained run: see README "Stage 2" and `eyeoct-train-dm`.

    python scripts/train_dm.py --config configs/dm/phantom_demo.yaml model.params.first_stage=RUN_DIR/export
    python scripts/train_dm.py --resume RUN_DIR|CKPT
    python scripts/train_dm.py --export-only RUN_DIR [--ckpt CKPT] [--no-ema]
"""
from eyeoct.commands.train_dm import main

if __name__ == "__main__":
    main()
