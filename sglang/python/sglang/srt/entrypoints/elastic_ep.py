"""Elastic EP scaling HTTP endpoints for dp_attention deployments."""


from fastapi import APIRouter, Request

from sglang.srt.utils.auth import AuthLevel, auth_level

router = APIRouter()


@router.post("/scale_elastic_ep")
@auth_level(AuthLevel.ADMIN_OPTIONAL)
async def scale_elastic_ep(raw_request: Request):
    raise NotImplementedError('slim removed the body of scale_elastic_ep: it never ran in any recording (see sglang/REMOVED.md)')


@router.get("/is_scaling_elastic_ep")
@auth_level(AuthLevel.ADMIN_OPTIONAL)
async def is_scaling_elastic_ep(raw_request: Request):
    raise NotImplementedError('slim removed the body of is_scaling_elastic_ep: it never ran in any recording (see sglang/REMOVED.md)')
