"""The built-in demo on CPU: phantom data -> stage 1 -> stage 2 -> inference -> baselines -> evaluation
(see `eyeoct-demo`).

    python scripts/demo.py                       # 8-15 minutes on 2 CPU cores (README: The demo)
    python scripts/demo.py --ddim-steps 20 ae.trainer.max_steps=200 dm.trainer.max_steps=200   # quicker look
"""
from eyeoct.commands.demo import main

if __name__ == "__main__":
    main()
