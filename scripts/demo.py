"""The built-in demo on CPU: phantom data -> stage 1 -> stage 2 -> inference -> baselines -> evaluation
(see `eyeoct-demo`).

    python scripts/demo.py                       # 8-11 minutes on 2 CPU cores (README: The demo)
    python scripts/demo.py --samples-per-input 2 ae.trainer.max_steps=200 dm.trainer.max_steps=200   # quicker look
"""
from eyeoct.commands.demo import main

if __name__ == "__main__":
    main()
