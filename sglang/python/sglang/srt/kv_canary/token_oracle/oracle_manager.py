from __future__ import annotations






class TokenOracleManager:
    pass


