from .tao_encoder_decoder import TAOEncoderDecoder

__all__ = ['TAOEncoderDecoder']
