"""Write a phantom dataset (paired CF photos and six B-scans) in the APTOS-2024 or folder layout
(see `eyeoct-make-phantom`).

Example: python scripts/make_phantom.py --out data/phantom --n 200 --layout aptos --seed 0
"""
from eyeoct.commands.make_phantom import main

if __name__ == "__main__":
    main()
