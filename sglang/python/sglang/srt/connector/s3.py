# SPDX-License-Identifier: Apache-2.0

from typing import Optional


from sglang.srt.connector import BaseFileConnector






def list_files(
    s3,
    path: str,
    allow_pattern: Optional[list[str]] = None,
    ignore_pattern: Optional[list[str]] = None,
) -> tuple[str, str, list[str]]:
    raise NotImplementedError("removed by slim: never run in any recording")


class S3Connector(BaseFileConnector):

    def __init__(self, url: str) -> None:
        import boto3

        super().__init__(url)
        self.client = boto3.client("s3")

    def glob(self, allow_pattern: Optional[list[str]] = None) -> list[str]:
        raise NotImplementedError("removed by slim: never run in any recording")

    def pull_files(
        self,
        allow_pattern: Optional[list[str]] = None,
        ignore_pattern: Optional[list[str]] = None,
    ) -> None:
        raise NotImplementedError("removed by slim: never run in any recording")


    def close(self):
        self.client.close()
        super().close()
