"""`python -m shop_r1` runs the `shop-r1` command line."""

from shop_r1.cli import main

main()
