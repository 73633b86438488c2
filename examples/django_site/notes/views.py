"""Three small JSON views: read a note, add one, and which login and role the session has."""

from __future__ import annotations

import json

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .models import Note


@require_GET
def read_note(request: HttpRequest, note_id: int) -> HttpResponse:
    note = get_object_or_404(Note, pk=note_id)
    return JsonResponse({"id": note.pk, "title": note.title})


@csrf_exempt
@require_POST
def create_note(request: HttpRequest) -> HttpResponse:
    data = json.loads(request.body or b"{}")
    title, body = str(data.get("title", ""))[:200], str(data.get("body", ""))
    note = Note.objects.create(title=title, body=body)
    return JsonResponse({"id": note.pk}, status=201)


@require_GET
def whoami(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user, current_user")
        session_user, current_user = cursor.fetchone()
    return JsonResponse({"session_user": session_user, "current_user": current_user})
