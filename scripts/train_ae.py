"""Train the stage-1 KL autoencoder, or export a trained run: see README "Stage 1" and `eyeoct-train-ae`.

    python scripts/train_ae.py --config configs/ae/phantom_demo.yaml [key.sub=value ...]
    python scripts/train_ae.py --resume RUN_DIR|CKPT
    python scripts/train_ae.py --export-only RUN_DIR|CKPT [--export-batches N]
"""
from eyeoct.commands.train_ae import main

if __name__ == "__main__":
    main()
