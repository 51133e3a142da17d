"""Learning: the networks (from scratch, pretrained, the domain source, the DAE), their training, and the features
taken from them or from the images (deep features, handcrafted radiomics)."""
