"""Map products built on the aligned cubes: samples, baselines and models of each product."""
