"""Neural network models of the products (segmentation networks in `fcn`)."""
