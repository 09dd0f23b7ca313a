"""Domain errors. `str(err)` is for logs (English); `err.message_pt` is what a user reads."""
from __future__ import annotations


class DomainError(Exception):
    message_pt = "Não foi possível concluir a operação."

    def __init__(self, detail: str = "", message_pt: str | None = None) -> None:
        super().__init__(detail or self.__class__.__name__)
        if message_pt is not None:
            self.message_pt = message_pt


class InvalidInput(DomainError):
    message_pt = "Dados inválidos."


class InvalidPhone(InvalidInput):
    message_pt = "Número de telefone inválido. Informe DDD e número, por exemplo (11) 98765-4321."


class InvalidCNPJ(InvalidInput):
    message_pt = "CNPJ inválido: confira os 14 dígitos."


class DuplicateCustomer(DomainError):
    message_pt = "Já existe um cliente com esses dados."


class UnknownCustomer(DomainError):
    message_pt = "Cliente não encontrado."


class NotFound(DomainError):
    message_pt = "Registro não encontrado."


class IllegalTransition(DomainError):
    message_pt = "Essa mudança de status não é permitida."


class AlreadyAssigned(DomainError):
    message_pt = "Este chamado já foi assumido por outro técnico."


class AuthenticationFailed(DomainError):
    message_pt = "E-mail ou senha incorretos."


class AccountLocked(DomainError):
    message_pt = "Conta bloqueada temporariamente após tentativas inválidas. Tente novamente mais tarde."


class PermissionDenied(DomainError):
    message_pt = "Você não tem permissão para acessar esta área."
