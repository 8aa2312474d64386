import torch



class NgramEmbedding(torch.nn.Module):

    pass
