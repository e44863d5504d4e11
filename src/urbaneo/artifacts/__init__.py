"""Published artifacts: COG / vector / quicklook / metrics writers, the STAC catalog and version ids."""
