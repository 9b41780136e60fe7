"""Read every case of a data config once, fill the cache and list every unusable input: see README "Data"
and `eyeoct-prepare-data`.

    python scripts/prepare_data.py --config configs/data/aptos.yaml [key.sub=value ...]
"""
from eyeoct.commands.prepare_data import main

if __name__ == "__main__":
    main()
